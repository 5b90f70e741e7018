/**
 * How far V8 lets the old generation grow after a full collection before it starts the next
 * one (HEAP_GROWING_PERCENT). V8 sizes that room from how fast it collects against how fast
 * objects are promoted; tusgate's heap is small (about 26 MB live), so it collects fast and,
 * under load, V8 often gives it only the minimum, live + 8 MB. On the S3 staging path, where
 * the SDK's objects for each part in flight live long enough to be promoted, that meant one to four mark-compacts per
 * 64 MiB upload, each freeing about 1 MB (`--trace-gc`, `--trace-incremental-marking`:
 * "Start (allocation limit)", 28 MB of a 36 MB limit). A fixed factor of 1 + percent/100 gives
 * the heap that much room after each mark-compact instead.
 *
 * Set once the server listens, not on node's command line: the garbage of start-up (loading
 * the modules) is still collected under V8's own rule, so the idle footprint stays as it was.
 */
import v8 from 'node:v8';

/** 0 leaves V8's own rule. */
export function setHeapGrowing(percent: number): void {
  if (percent > 0) v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
}
