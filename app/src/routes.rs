//! The app's paths: which pages need a session (the server reads this to send visitors to the
//! page that fits and to render the signed-in pages with their data), the room id in a path, and
//! the click handler of in-app links.

use leptos_router::hooks::use_navigate;

/// The pages that need a session (the chat screen's routes in `App`). The server reads this to
/// send signed-out visitors to the sign-in page and to render these pages signed in: keep it
/// beside the routes, so a new page cannot be forgotten there.
pub fn is_signed_in_page(path: &str) -> bool {
    matches!(path, "/" | "/jobs" | "/admin" | "/race")
        || path
            .strip_prefix("/rooms/")
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// The pages for signed-out visitors; the signed-in are sent on to the app.
pub fn is_sign_in_page(path: &str) -> bool {
    matches!(path, "/login" | "/signup")
}

/// The room id in a path like `/rooms/{id}`.
pub fn room_in_path(path: &str) -> Option<String> {
    path.strip_prefix("/rooms/")
        .and_then(|rest| rest.split('/').next())
        .filter(|id| !id.is_empty())
        .map(str::to_string)
}

/// A click handler for in-app links: navigates through the router (a plain click on the link
/// alone updated the view but left the address bar behind). Modified clicks open as usual.
pub fn nav_click(target: String) -> impl FnMut(leptos::ev::MouseEvent) + 'static {
    let navigate = use_navigate();
    move |ev: leptos::ev::MouseEvent| {
        if ev.button() == 0 && !(ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.alt_key()) {
            ev.prevent_default();
            navigate(&target, Default::default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chat_route_needs_a_session() {
        for path in ["/", "/jobs", "/admin", "/race", "/rooms/abc"] {
            assert!(is_signed_in_page(path), "{path}");
        }
        for path in [
            "/login",
            "/signup",
            "/rooms/",
            "/rooms/a/b",
            "/pkg/x.js",
            "/nope",
        ] {
            assert!(!is_signed_in_page(path), "{path}");
        }
        assert!(is_sign_in_page("/login") && is_sign_in_page("/signup"));
    }
}
