// The refresh-token cookie of the REST gateway (for browsers; the rules are in
// services/api/src/token-cookie.ts): its name, its path and the request header that asks for it,
// shared by the gateway that sets it and the generator that declares it in the OpenAPI document.

export const REFRESH_COOKIE = 'bank_refresh';
/** The path the cookie is scoped to: the browser sends it to the refresh route and nowhere else in the API. */
export const REFRESH_COOKIE_PATH = '/v1/tokens';
/** The request header that asks for the refresh token as a cookie; its one accepted value is `cookie`. */
export const TOKEN_DELIVERY_HEADER = 'token-delivery';
