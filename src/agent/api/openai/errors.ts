/*
 * Errors in OpenAI's shape: {"error": {"message", "type", "param", "code"}}. One class per status
 * the API gives, so routes throw and one handler answers.
 */

export type ApiErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'rate_limit_error' | 'server_error' | 'service_unavailable'

export interface ApiErrorBody {
  error: { message: string, type: ApiErrorType, param: string | null, code: string | null }
}

export class ApiError extends Error {
  constructor (
    readonly status: number,
    readonly type: ApiErrorType,
    readonly code: string | null,
    message: string,
    readonly param: string | null = null,
    /** a retry cannot help (x-should-retry: false): the request itself is wrong */
    readonly retryable = false
  ) {
    super(message)
    this.name = new.target.name
  }

  body (): ApiErrorBody { return { error: { message: this.message, type: this.type, param: this.param, code: this.code } } }
}

export class InvalidRequestError extends ApiError {
  constructor (message: string, param: string | null = null, code: string | null = null) { super(400, 'invalid_request_error', code, message, param) }
}
export class InvalidApiKeyError extends ApiError {
  constructor (message = 'a valid API key is required: send it as "Authorization: Bearer KEY" or "X-Api-Key: KEY" (mesh api-key create makes one)') { super(401, 'authentication_error', 'invalid_api_key', message) }
}
export class ModelNotFoundError extends ApiError {
  constructor (model: string, served: string) { super(404, 'invalid_request_error', 'model_not_found', `the model ${JSON.stringify(model)} is not served by this ring; GET /v1/models lists ${JSON.stringify(served)}`, 'model') }
}
export class RouteNotFoundError extends ApiError {
  constructor (method: string, url: string) { super(404, 'invalid_request_error', 'not_found', `no route ${method} ${url}`) }
}
export class BodyTooLargeError extends ApiError {
  constructor (limit: number) { super(413, 'invalid_request_error', 'request_too_large', `the request body is larger than ${limit} bytes`) }
}
export class QueueFullError extends ApiError {
  constructor (readonly retryAfterS: number, waiting: number) { super(429, 'rate_limit_error', 'rate_limit_exceeded', `the ring is busy: ${waiting} requests are already waiting; retry in ${retryAfterS} s`, null, true) }
}
export class RingUnavailableError extends ApiError {
  constructor (message: string) { super(503, 'service_unavailable', 'ring_unavailable', message, null, true) }
}
export class ForbiddenHostError extends ApiError {
  constructor (host: string) { super(403, 'invalid_request_error', 'forbidden_host', `the Host header ${JSON.stringify(host)} is not a name of this machine; the gateway is bound to loopback (DNS rebinding guard)`) }
}
export class InternalApiError extends ApiError {
  constructor (message: string) { super(500, 'server_error', 'internal_error', message, null, true) }
}
