// The demo page's script: an Uppy Dashboard uploading to tusgate, and what came back.
// Plain browser JavaScript, no build step; Uppy is its prebuilt bundle, served by tusgate.
import { Dashboard, Tus, Uppy } from './uppy.min.mjs'

const MiB = 1024 * 1024
const $ = (selector) => document.querySelector(selector)

// ?api=http://host:port names the tusgate to talk to (the page may be served from elsewhere)
const api = apiOrigin(new URLSearchParams(location.search).get('api')) ?? location.origin

function apiOrigin(value) {
  if (!value) return undefined
  try {
    const url = new URL(value)
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : undefined
  } catch {
    return undefined
  }
}

const settings = await fetch(`${api}/demo/settings.json`)
  .then((response) => (response.ok ? response.json() : Promise.reject(new Error(`HTTP ${response.status}`))))
  .catch((error) => {
    $('#network').textContent = `Cannot reach tusgate at ${api} (${error.message}).`
    return { auth: 'none', tusPath: '/files/' }
  })
const endpoint = `${api}${settings.tusPath}`
$('#endpoint').textContent = endpoint
for (const node of document.querySelectorAll('.endpoint-text')) node.textContent = endpoint
if (settings.auth !== 'none') {
  $('#auth').hidden = false
  $('#auth-mode').textContent = `AUTH_MODE=${settings.auth}`
}

/** The headers every request carries: the pasted token, if any. */
function authHeaders() {
  const token = $('#token').value.trim().replace(/^Bearer\s+/i, '')
  return token ? { Authorization: `Bearer ${token}` } : {}
}

const chunkSize = () => Number($('#chunk-size').value) * MiB || Number.POSITIVE_INFINITY

const uppy = new Uppy({ autoProceed: true })
  .use(Dashboard, {
    inline: true,
    target: '#dashboard',
    width: '100%',
    height: 320,
    showProgressDetails: true,
    proudlyDisplayPoweredByUppy: false,
    note: 'Images (JPEG, PNG, WebP, GIF, AVIF). Anything else is refused by the server, not by this page.',
  })
  .use(Tus, {
    endpoint,
    chunkSize: chunkSize(),
    retryDelays: [0, 1000, 3000, 5000],
    onBeforeRequest: (req) => {
      for (const [name, value] of Object.entries(authHeaders())) req.setHeader(name, value)
    },
  })

$('#chunk-size').addEventListener('change', () => uppy.getPlugin('Tus').setOptions({ chunkSize: chunkSize() }))

// ---- the network ------------------------------------------------------------------------
const uploading = new Map() // file id -> bytes sent when last heard of
const lost = (sent) => `Connection lost after ${mib(sent)} sent; waiting for the network…`
uppy.on('is-offline', () => {
  $('#network').textContent = 'Offline: the uploads wait, and resume from where the server stopped receiving.'
  for (const [id, sent] of uploading) {
    row(id).offline = true
    row(id).status(lost(sent))
  }
})
uppy.on('back-online', () => {
  $('#network').textContent = 'Back online: resuming.'
  for (const id of uploading.keys()) Object.assign(row(id), { offline: false, resumed: true })
})

// ---- one row per file -------------------------------------------------------------------
const rows = new Map()

function row(id) {
  return rows.get(id)
}

uppy.on('file-added', (file) => {
  $('#empty').hidden = true
  const li = document.createElement('li')
  li.className = 'result'
  li.dataset.state = 'waiting'
  li.dataset.name = file.name
  const title = document.createElement('h3')
  title.textContent = file.name
  const progress = document.createElement('progress')
  progress.max = 1
  progress.value = 0
  progress.setAttribute('aria-label', `Upload of ${file.name}`)
  const status = document.createElement('p')
  status.className = 'status'
  status.textContent = `${bytes(file.size)}, waiting…`
  li.append(title, progress, status)
  $('#results').prepend(li)
  rows.set(file.id, {
    li,
    progress,
    resumed: false,
    status: (text) => {
      status.textContent = text
    },
  })
  // what the original carries, to compare with what is published
  readMetadata(file.data).then((found) => {
    if (rows.get(file.id)) rows.get(file.id).metadata = found
  })
})

uppy.on('file-removed', (file) => uploading.delete(file.id))

uppy.on('upload-progress', (file, { bytesUploaded, bytesTotal }) => {
  const r = row(file.id)
  if (!r || !bytesTotal) return
  uploading.set(file.id, bytesUploaded)
  r.li.dataset.state = 'uploading'
  r.progress.value = bytesUploaded / bytesTotal
  const done = `${mib(bytesUploaded)} of ${mib(bytesTotal)} (${Math.floor((100 * bytesUploaded) / bytesTotal)} %)`
  r.status(r.offline ? lost(bytesUploaded) : r.resumed ? `Resumed after the network dropped: ${done}` : done)
})

uppy.on('upload-success', async (file, response) => {
  uploading.delete(file.id)
  const r = row(file.id)
  if (!r) return
  r.progress.value = 1
  r.status('Received; the server is re-encoding it…')
  let artifact = parse(response?.body?.xhr?.responseText)
  if (!artifact?.url) artifact = await askStatus(response?.uploadURL)
  show(r, file, artifact)
})

uppy.on('upload-error', (file, error, response) => {
  uploading.delete(file.id)
  const r = row(file.id)
  if (!r) return
  const status = response?.status
  const body = parse(response?.body?.xhr?.responseText) ?? parse(String(error?.message ?? '').split('response text: ')[1]?.split(', request id')[0])
  const refusal = body?.error
  r.li.dataset.state = refusal ? 'refused' : 'failed'
  r.li.classList.add('bad')
  r.progress.hidden = true
  if (refusal) {
    r.status(`Refused${status ? ` (${status} ${refusal.code})` : ` (${refusal.code})`}: ${refusal.message}`)
  } else {
    r.status(`Failed: ${String(error?.message ?? error)}`)
  }
})

function parse(text) {
  if (!text) return undefined
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** The final response was lost: ask /uploads/:id (while it is still being processed, again). */
async function askStatus(uploadURL) {
  const id = uploadURL?.split('/').pop()
  if (!id) return undefined
  for (let attempt = 0; attempt < 30; attempt++) {
    const response = await fetch(`${api}/uploads/${id}`, { headers: authHeaders() }).catch(() => undefined)
    const body = response ? await response.json().catch(() => undefined) : undefined
    if (body && body.state !== 'processing' && body.state !== 'receiving') return body
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
  return undefined
}

function show(r, file, artifact) {
  if (!artifact?.url) {
    r.li.dataset.state = 'failed'
    r.li.classList.add('bad')
    r.status(artifact?.error ? `Failed (${artifact.error.code}): ${artifact.error.message}` : 'Uploaded, but the server gave no result.')
    return
  }
  const { li } = r
  li.dataset.state = 'done'
  Object.assign(li.dataset, { uploadId: artifact.id, url: artifact.url, format: artifact.format, width: artifact.width, height: artifact.height, bytes: artifact.bytes })
  r.progress.hidden = true
  r.status(r.resumed ? 'Published (the upload resumed after the network dropped).' : 'Published.')
  const figure = document.createElement('figure')
  const img = document.createElement('img')
  img.src = artifact.url
  img.width = artifact.width
  img.height = artifact.height
  img.alt = `The published copy of ${file.name}`
  // the network may be down just now: load it again once it is back
  img.addEventListener('error', () => window.addEventListener('online', () => (img.src = artifact.url), { once: true }))
  const facts = document.createElement('dl')
  const original = artifact.original?.bytes ?? file.size
  const fact = (term, value) => {
    const dt = document.createElement('dt')
    dt.textContent = term
    const dd = document.createElement('dd')
    dd.textContent = value
    facts.append(dt, dd)
  }
  fact('Format', artifact.format.toUpperCase())
  fact('Dimensions', `${artifact.width} × ${artifact.height} px`)
  fact('Size', `${bytes(artifact.bytes)}; the original: ${bytes(original)}`)
  fact('Metadata removed', describeMetadata(r.metadata))
  fact('URL', artifact.url)
  figure.append(img)
  li.append(figure, facts)
}

// ---- what metadata an original carries (read in the browser from its first bytes) --------

function describeMetadata(found) {
  if (!found) return 'all of it (EXIF, GPS, XMP, ICC): the server re-encodes from pixels only'
  if (found.total === 0) return 'none was found in the original'
  const parts = found.blocks.map(({ name, bytes: n }) => `${name} ${short(n)}`)
  const details = []
  if (found.gps) details.push(`GPS position ${found.gps}`)
  else if (found.hasGps) details.push('a GPS position')
  if (found.camera) details.push(`camera ${found.camera}`)
  if (found.orientation && found.orientation !== 1) details.push(`orientation ${found.orientation} (applied to the pixels)`)
  const what = parts.length > 1 ? `${bytes(found.total)} in all: ${parts.join(', ')}` : `${found.blocks[0].name}, ${bytes(found.total)}`
  return `${what}${details.length ? `, with ${details.join(', ')}` : ''}`
}

/** The metadata blocks of a JPEG, PNG or WebP, from its first MiB; undefined for another type. */
async function readMetadata(blob) {
  try {
    const buffer = new DataView(await blob.slice(0, MiB).arrayBuffer())
    if (buffer.byteLength > 4 && buffer.getUint16(0) === 0xffd8) return jpegMetadata(buffer)
    if (buffer.byteLength > 8 && buffer.getUint32(0) === 0x89504e47) return pngMetadata(buffer)
    if (buffer.byteLength > 12 && ascii(buffer, 0, 4) === 'RIFF' && ascii(buffer, 8, 4) === 'WEBP') return webpMetadata(buffer)
  } catch {
    // not what it said it is: the server will say so
  }
  return undefined
}

const ascii = (view, at, length) => String.fromCharCode(...new Uint8Array(view.buffer, view.byteOffset + at, length))

function collect() {
  const blocks = new Map()
  return {
    add(name, n) {
      blocks.set(name, (blocks.get(name) ?? 0) + n)
    },
    done(extra = {}) {
      const list = [...blocks].map(([name, n]) => ({ name, bytes: n }))
      return { blocks: list, total: list.reduce((sum, b) => sum + b.bytes, 0), ...extra }
    },
  }
}

function jpegMetadata(view) {
  const found = collect()
  let exif = {}
  for (let at = 2; at + 4 <= view.byteLength; ) {
    if (view.getUint8(at) !== 0xff) break
    const marker = view.getUint8(at + 1)
    if (marker === 0xda || marker === 0xd9) break // start of scan: no metadata after this
    const length = view.getUint16(at + 2)
    const body = at + 4
    if (marker === 0xe1 && length > 8 && ascii(view, body, 6) === 'Exif\0\0') {
      found.add('EXIF', length + 2)
      try {
        exif = readExif(new DataView(view.buffer, view.byteOffset + body + 6, Math.min(length - 8, view.byteLength - body - 6)))
      } catch {
        // a broken EXIF block still counts by its size
      }
    } else if (marker === 0xe1) found.add('XMP', length + 2)
    else if (marker === 0xe2) found.add('ICC profile', length + 2)
    else if (marker === 0xed) found.add('IPTC', length + 2)
    else if ((marker > 0xe0 && marker <= 0xef) || marker === 0xfe) found.add('other', length + 2)
    at += 2 + length
  }
  return found.done(exif)
}

function pngMetadata(view) {
  const found = collect()
  const names = { eXIf: 'EXIF', iTXt: 'text', tEXt: 'text', zTXt: 'text', iCCP: 'ICC profile', tIME: 'other' }
  for (let at = 8; at + 12 <= view.byteLength; ) {
    const length = view.getUint32(at)
    const type = ascii(view, at + 4, 4)
    if (names[type]) found.add(names[type], length + 12)
    if (type === 'IEND') break
    at += 12 + length
  }
  return found.done()
}

function webpMetadata(view) {
  const found = collect()
  const names = { EXIF: 'EXIF', 'XMP ': 'XMP', ICCP: 'ICC profile' }
  for (let at = 12; at + 8 <= view.byteLength; ) {
    const type = ascii(view, at, 4)
    const length = view.getUint32(at + 4, true)
    if (names[type]) found.add(names[type], length + 8)
    at += 8 + length + (length % 2)
  }
  return found.done()
}

/** A few telling EXIF fields: orientation, camera, GPS position. */
function readExif(tiff) {
  const little = ascii(tiff, 0, 2) === 'II'
  const u16 = (at) => tiff.getUint16(at, little)
  const u32 = (at) => tiff.getUint32(at, little)
  const entries = (ifd) => {
    const list = new Map()
    const count = u16(ifd)
    for (let i = 0; i < count; i++) {
      const at = ifd + 2 + 12 * i
      list.set(u16(at), { type: u16(at + 2), count: u32(at + 4), at: at + 8 })
    }
    return list
  }
  const text = (entry) => {
    if (!entry) return undefined
    const at = entry.count > 4 ? u32(entry.at) : entry.at
    return ascii(tiff, at, entry.count).replace(/\0.*$/s, '').trim()
  }
  const degrees = (entry, ref) => {
    if (!entry || entry.count !== 3 || !ref) return undefined
    const at = u32(entry.at)
    const [d, m, s] = [0, 1, 2].map((i) => u32(at + 8 * i) / (u32(at + 8 * i + 4) || 1))
    return `${(d + m / 60 + s / 3600).toFixed(4)}° ${ref}`
  }
  const result = {}
  const ifd0 = entries(u32(4))
  if (ifd0.has(0x0112)) result.orientation = u16(ifd0.get(0x0112).at)
  const camera = [text(ifd0.get(0x010f)), text(ifd0.get(0x0110))].filter(Boolean)
  if (camera.length) result.camera = camera[1]?.startsWith(camera[0] ?? '') ? camera[1] : camera.join(' ')
  if (ifd0.has(0x8825)) {
    result.hasGps = true
    const gps = entries(u32(ifd0.get(0x8825).at))
    const lat = degrees(gps.get(2), text(gps.get(1)))
    const lon = degrees(gps.get(4), text(gps.get(3)))
    if (lat && lon) result.gps = `${lat}, ${lon}`
  }
  return result
}

// ---- numbers for people -----------------------------------------------------------------

function bytes(n) {
  if (n < 1024) return `${n} bytes`
  const [unit, size] = n < MiB ? ['KiB', 1024] : ['MiB', MiB]
  return `${n.toLocaleString('en')} bytes (${(n / size).toFixed(1)} ${unit})`
}

function short(n) {
  return n < 1024 ? `${n} bytes` : n < MiB ? `${(n / 1024).toFixed(1)} KiB` : mib(n)
}

function mib(n) {
  return `${(n / MiB).toFixed(1)} MiB`
}

// for the tests and the curious: the Uppy instance
window.uppy = uppy
