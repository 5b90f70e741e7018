// Loaded into a server under test with NODE_OPTIONS=--import: V8 prints the growing factor of
// the heap's next limit after every full collection (--trace-gc-verbose, on stdout), and a full
// collection is forced every 100 ms, so that a test can read which factor V8 uses now.
import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--trace-gc-verbose');
v8.setFlagsFromString('--expose-gc');
const collect = vm.runInNewContext('gc');
setInterval(() => collect(), 100).unref();
