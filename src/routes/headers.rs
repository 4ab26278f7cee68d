//! Response headers and `HEAD`, in one place for every route (issue 13):
//! `X-Content-Type-Options: nosniff` on every response, a
//! `Content-Security-Policy` on every page (HTML), `Referrer-Policy:
//! no-referrer` on pages whose URL carries a key, and `HEAD` answered
//! wherever `GET` is routed.

use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::Method;
use actix_web::http::header::{
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderMap, HeaderValue, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use actix_web::middleware::Next;

/// Every page: only this origin's scripts, styles and sockets, no plugins,
/// no `<base>`, forms to this origin only, not framed.
const CSP_PAGE: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-src 'none'; frame-ancestors 'none'";

/// The watch page also frames Twitch's player and chat (their embed rules
/// only ask for `parent=`, which the page sets; the page itself is not framed).
const CSP_WATCH: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-src https://player.twitch.tv https://www.twitch.tv/embed/; \
    frame-ancestors 'none'";

/// The overlay: OBS loads it as a top-level page, and web studios and
/// dashboards load browser sources in frames, so any page may frame it. It
/// has no control to click, and loading it at all needs the key.
const CSP_OVERLAY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'none'; frame-src 'none'; frame-ancestors *";

/// Which page a path is, for its policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    Watch,
    /// Its URL carries the overlay key.
    Overlay,
    Other,
}

impl Page {
    fn of(path: &str) -> Self {
        if path.starts_with("/watch/") {
            Self::Watch
        } else if path.starts_with("/overlay/") {
            Self::Overlay
        } else {
            Self::Other
        }
    }

    fn csp(self) -> &'static str {
        match self {
            Self::Watch => CSP_WATCH,
            Self::Overlay => CSP_OVERLAY,
            Self::Other => CSP_PAGE,
        }
    }
}

/// The middleware (outermost, so that it also sees the errors of the
/// middlewares inside it).
///
/// # Errors
/// The inner service's error, whose response then carries the headers too.
pub async fn security_headers(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, actix_web::Error> {
    // HEAD is served by the GET route. actix-http knows the request was a
    // HEAD and sends the headers of a sized body without the body.
    let head = req.method() == Method::HEAD;
    if head {
        req.head_mut().method = Method::GET;
    }
    let page = Page::of(req.path());
    let mut res = match next.call(req).await {
        Ok(res) => res.map_into_left_body(),
        Err(e) => {
            // The request is gone (routing needs it unshared): the error's
            // own response, with the headers, becomes the error.
            let mut response = e.error_response();
            add_headers(response.headers_mut(), page);
            return Err(InternalError::from_response(e.to_string(), response).into());
        }
    };
    if head && !matches!(res.response().body().size(), BodySize::Sized(_)) {
        // A stream (SSE) would be read, and thrown away, forever.
        res = res.map_body(|_, _| EitherBody::right(BoxBody::new(())));
    }
    add_headers(res.headers_mut(), page);
    Ok(res)
}

/// `nosniff` always; the page's CSP on HTML; `no-referrer` where the URL
/// carries a key.
fn add_headers(headers: &mut HeaderMap, page: Page) {
    let is_html = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if is_html {
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(page.csp()),
        );
    }
    if page == Page::Overlay {
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_page_has_its_policy() {
        assert_eq!(Page::of("/watch/teststreamer"), Page::Watch);
        assert_eq!(Page::of("/overlay/teststreamer"), Page::Overlay);
        assert_eq!(Page::of("/"), Page::Other);
        assert_eq!(Page::of("/dashboard"), Page::Other);
        assert_eq!(Page::of("/rooms/teststreamer"), Page::Other);
        assert!(
            CSP_WATCH.contains("frame-src https://player.twitch.tv https://www.twitch.tv/embed/")
        );
        assert!(CSP_OVERLAY.contains("frame-ancestors *"));
        for csp in [CSP_PAGE, CSP_WATCH] {
            assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        }
        for csp in [CSP_PAGE, CSP_WATCH, CSP_OVERLAY] {
            assert!(csp.contains("script-src 'self';"), "{csp}");
            assert!(!csp.contains("unsafe"), "{csp}");
        }
    }
}
