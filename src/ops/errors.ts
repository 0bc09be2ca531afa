import { MeshError } from '../errors.js'

/** This system cannot run mesh as a service (not Linux with systemd, or systemd not running). */
export class ServiceUnsupportedError extends MeshError {}

/** A systemctl (or systemd-sysusers, install) command failed: its first line of stderr says why. */
export class ServiceCommandError extends MeshError {}

/** The service was installed but a post-check failed: the agent is not what it should be. */
export class ServiceCheckError extends MeshError {}

/** `mesh doctor` found a failing check (or, with --strict, a warning): the table says which. */
export class DoctorFoundProblemsError extends MeshError {}
