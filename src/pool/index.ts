/**
 * The pool library's public surface: identity, pools, certificates, revocation, certificate requests,
 * policy and the records under MESH_HOME. Other parts of mesh import from here.
 */
export * from './errors.js'
export * from './paths.js'
export * from './keys.js'
export * from './identity.js'
export * from './pool-id.js'
export * from './policy.js'
export * from './pool-keys.js'
export * from './cert.js'
export * from './revocation.js'
export * from './cert-request.js'
export * from './store.js'
export * from './admin.js'
export * from './member.js'
export * from './status.js'
export { toHex, fromHex, toBase64Url, fromBase64Url } from './encoding.js'
