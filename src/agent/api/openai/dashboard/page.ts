export const DASHBOARD_HTML = '<!doctype html><title>mesh</title>'
