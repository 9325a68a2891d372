//! One module per page of the signed-in app. A page reads and changes the state in
//! [`crate::state`] and is built from [`crate::components`].

pub mod admin;
pub mod home;
pub mod jobs;
pub mod race;
pub mod room;
