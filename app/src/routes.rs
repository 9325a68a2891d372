//! The app's paths, once. [`Page`] names every page's first segment; the router's table in
//! `App` is written with it, and the server asks [`is_signed_in_page`] and [`is_sign_in_page`]
//! (read from the same list) to send visitors to the page that fits and to render the signed-in
//! pages with their data. Also here: the room id in a path, and the click handler of in-app
//! links.

use leptos_router::hooks::use_navigate;
use leptos_router::AsPath;

/// A page of the app by its first path segment; the home page `/` has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Login,
    Signup,
    /// `/rooms/{id}`: the only page whose path goes on, with the room's id.
    Rooms,
    Jobs,
    Admin,
    Race,
}

impl Page {
    pub const ALL: [Page; 6] = [
        Page::Login,
        Page::Signup,
        Page::Rooms,
        Page::Jobs,
        Page::Admin,
        Page::Race,
    ];

    pub const fn segment(self) -> &'static str {
        match self {
            Page::Login => "login",
            Page::Signup => "signup",
            Page::Rooms => "rooms",
            Page::Jobs => "jobs",
            Page::Admin => "admin",
            Page::Race => "race",
        }
    }

    /// Whether the page needs a session. The sign-in pages do not (and the signed-in are sent
    /// on from them); every other page is the app's, under its layout.
    pub const fn signed_in(self) -> bool {
        match self {
            Page::Login | Page::Signup => false,
            Page::Rooms | Page::Jobs | Page::Admin | Page::Race => true,
        }
    }

    /// The page's address (for `Rooms`, see [`room_href`]).
    pub fn href(self) -> String {
        format!("/{}", self.segment())
    }

    /// The page at `path`, when it is one of these: its segment, followed by exactly one
    /// non-empty id segment for `Rooms` and by nothing for the others.
    fn of(path: &str) -> Option<Page> {
        let rest = path.strip_prefix('/')?;
        let (segment, id) = match rest.split_once('/') {
            Some((segment, id)) => (segment, Some(id)),
            None => (rest, None),
        };
        let page = Page::ALL.into_iter().find(|p| p.segment() == segment)?;
        let fits = match (page, id) {
            (Page::Rooms, Some(id)) => !id.is_empty() && !id.contains('/'),
            (Page::Rooms, None) => false,
            (_, id) => id.is_none(),
        };
        fits.then_some(page)
    }
}

/// The router matches `StaticSegment(Page::Jobs)` as the segment `jobs`.
impl AsPath for Page {
    fn as_path(&self) -> &'static str {
        self.segment()
    }
}

/// The address of a room's page.
pub fn room_href(id: &str) -> String {
    format!("/{}/{id}", Page::Rooms.segment())
}

/// The pages that need a session: the home page and every [`Page`] that says so. The server reads
/// this to send signed-out visitors to the sign-in page and to render these pages signed in.
pub fn is_signed_in_page(path: &str) -> bool {
    path == "/" || Page::of(path).is_some_and(Page::signed_in)
}

/// The pages for signed-out visitors; the signed-in are sent on to the app.
pub fn is_sign_in_page(path: &str) -> bool {
    Page::of(path).is_some_and(|p| !p.signed_in())
}

/// The room id in a path like `/rooms/{id}`.
pub fn room_in_path(path: &str) -> Option<String> {
    path.strip_prefix('/')
        .and_then(|rest| rest.strip_prefix(Page::Rooms.segment()))
        .and_then(|rest| rest.strip_prefix('/'))
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

    #[test]
    fn a_page_is_found_at_its_own_address() {
        for page in Page::ALL {
            let path = match page {
                Page::Rooms => room_href("abc"),
                _ => page.href(),
            };
            assert_eq!(Page::of(&path), Some(page), "{path}");
            assert_eq!(Page::of(&format!("{path}/more")), None, "{path}/more");
        }
        assert_eq!(Page::of("/"), None);
        assert_eq!(Page::of("/rooms"), None);
        assert!(!is_sign_in_page("/jobs") && !is_sign_in_page("/"));
    }

    #[test]
    fn the_room_id_is_read_from_the_path() {
        assert_eq!(room_in_path("/rooms/abc").as_deref(), Some("abc"));
        assert_eq!(room_in_path(&room_href("abc")).as_deref(), Some("abc"));
        for path in ["/", "/rooms", "/rooms/", "/roomsabc", "/jobs"] {
            assert_eq!(room_in_path(path), None, "{path}");
        }
    }
}
