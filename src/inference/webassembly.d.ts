// The few WebAssembly JS API types the kernels use. TypeScript ships them only in lib.dom, which
// this Node project does not load; @types/node declares the namespace but not these members.
declare namespace WebAssembly {
  class Memory {
    constructor (descriptor: { initial: number, maximum?: number, shared?: boolean })
    readonly buffer: ArrayBuffer | SharedArrayBuffer
  }
  class Module {
    constructor (bytes: Uint8Array)
  }
  class Instance {
    constructor (module: Module, imports?: Record<string, Record<string, unknown>>)
    readonly exports: Record<string, unknown>
  }
}
