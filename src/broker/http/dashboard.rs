//! `GET /`: the dashboard, one self-contained page (`dashboard.html`).
//!
//! Nothing comes from outside the broker: the styles, the script and the charts
//! (SVG drawn by the script) are all inside the page, and its
//! Content-Security-Policy forbids anything else. The script asks `/api/stats`
//! for the figures every second and computes the rates from one answer to the
//! next, keeping the last five minutes for the charts.

/// The page.
pub(crate) const PAGE: &str = include_str!("dashboard.html");

/// Inline styles and script, requests to the broker itself, nothing else.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";
