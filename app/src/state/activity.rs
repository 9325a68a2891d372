//! Notifications and jobs state in the browser: the notifications with their unread count,
//! toasts, opt-in desktop notifications, and the jobs with their progress. State arrives over the
//! `notifications` and `jobs` feeds (whichever transport each rides) on top of a first load over
//! REST.

use crate::api;
use leptos::prelude::*;
use protocol::{
    EventData, Feed, Job, JobId, JobList, Notification, NotificationId, NotificationList,
    TypedEvent,
};
use std::collections::HashSet;

/// How long a toast stays (paused while the pointer is on it).
const TOAST_MS: u64 = 6_000;
/// Toasts shown at once; older ones give way.
const MAX_TOASTS: usize = 3;
/// localStorage key remembering that the user asked for desktop notifications.
pub(crate) const DESKTOP_KEY: &str = "switchboard.desktop-notifications";

#[derive(Debug, Clone, PartialEq)]
pub struct Toast {
    pub note: Notification,
    pub hovered: bool,
}

/// Notifications and jobs state (all signals, Copy).
#[derive(Clone, Copy)]
pub struct Activity {
    pub notes: RwSignal<Vec<Notification>>,
    pub unread: RwSignal<i64>,
    pub toasts: RwSignal<Vec<Toast>>,
    pub panel_open: RwSignal<bool>,
    pub jobs: RwSignal<Vec<Job>>,
    pub cancelling: RwSignal<HashSet<JobId>>,
    /// Ticks every second, for "updated Ns ago".
    pub clock: RwSignal<i64>,
}

impl Activity {
    pub fn new() -> Self {
        Activity {
            notes: RwSignal::new(Vec::new()),
            unread: RwSignal::new(0),
            toasts: RwSignal::new(Vec::new()),
            panel_open: RwSignal::new(false),
            jobs: RwSignal::new(Vec::new()),
            cancelling: RwSignal::new(HashSet::new()),
            clock: RwSignal::new(crate::time::now_ms()),
        }
    }

    pub async fn load(self) {
        if let Ok(list) = api::get::<NotificationList>("/api/notifications?limit=50").await {
            self.notes.set(list.notifications);
            self.unread.set(list.unread);
        }
        if let Ok(list) = api::get::<JobList>("/api/jobs").await {
            self.jobs.set(list.jobs);
        }
    }

    /// Applies an event of the notifications or jobs feed; false if it was neither.
    pub fn apply(self, ev: &TypedEvent) -> bool {
        match (ev.feed, &ev.data) {
            (Feed::Notifications, EventData::Notification(note)) => {
                let note = note.clone();
                let mut fresh = false;
                self.notes.update(|n| {
                    if !n.iter().any(|x| x.id == note.id) {
                        n.insert(0, note.clone());
                        fresh = true;
                    }
                });
                if fresh && !note.read {
                    self.unread.update(|u| *u += 1);
                    if document().hidden() {
                        desktop_notification(&note);
                    } else if !about_open_room(&note) {
                        // (A mention in the room on screen is seen where it lands; opening the
                        // room reads it.)
                        self.toast(note);
                    }
                }
                true
            }
            (Feed::Notifications, EventData::Read(_)) => {
                // Marked read here or in another tab: the server has the true count.
                leptos::task::spawn_local(self.reload_notes());
                true
            }
            (Feed::Jobs, EventData::Job(job)) => {
                let job = job.clone();
                if job.is_finished() {
                    self.cancelling.update(|c| {
                        c.remove(&job.id);
                    });
                }
                self.upsert_job(job);
                true
            }
            _ => false,
        }
    }

    pub fn upsert_job(self, job: Job) {
        self.jobs
            .update(|jobs| match jobs.iter_mut().find(|j| j.id == job.id) {
                // Snapshots can arrive twice during a switch; never go back to an older one.
                Some(j) if j.updated_at <= job.updated_at => *j = job,
                Some(_) => {}
                None => jobs.insert(0, job),
            });
    }

    async fn reload_notes(self) {
        if let Ok(list) = api::get::<NotificationList>("/api/notifications?limit=50").await {
            self.notes.set(list.notifications);
            self.unread.set(list.unread);
        }
    }

    fn toast(self, note: Notification) {
        let id = note.id.clone();
        self.toasts.update(|t| {
            t.push(Toast {
                note,
                hovered: false,
            });
            while t.len() > MAX_TOASTS {
                t.remove(0);
            }
        });
        self.expire_toast(id, TOAST_MS);
    }

    fn expire_toast(self, id: NotificationId, after_ms: u64) {
        let toasts = self.toasts;
        set_timeout(
            move || {
                let hovered =
                    toasts.with_untracked(|t| t.iter().any(|x| x.note.id == id && x.hovered));
                if hovered {
                    self.expire_toast(id, 1_000);
                } else {
                    let _ = toasts.try_update(|t| t.retain(|x| x.note.id != id));
                }
            },
            std::time::Duration::from_millis(after_ms),
        );
    }

    /// Marks notifications read (all when `ids` is None).
    pub fn mark_read(self, ids: Option<Vec<NotificationId>>) {
        let body = match &ids {
            Some(ids) => serde_json::json!({ "ids": ids }),
            None => serde_json::json!({ "all": true }),
        };
        self.notes.update(|n| {
            for x in n.iter_mut() {
                if ids.as_ref().is_none_or(|ids| ids.contains(&x.id)) {
                    x.read = true;
                }
            }
        });
        leptos::task::spawn_local(async move {
            let _ = api::post::<_, ()>("/api/notifications/read", &body).await;
            self.reload_notes().await;
        });
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `note` points into the room this tab shows (its link is `/rooms/{id}#…`).
fn about_open_room(note: &Notification) -> bool {
    let Ok(path) = window().location().pathname() else {
        return false;
    };
    path.starts_with("/rooms/") && note.link.split('#').next() == Some(path.as_str())
}

fn desktop_notification(note: &Notification) {
    let wanted = window()
        .local_storage()
        .ok()
        .flatten()
        .and_then(|s| s.get_item(DESKTOP_KEY).ok().flatten())
        .is_some();
    if !wanted || web_sys::Notification::permission() != web_sys::NotificationPermission::Granted {
        return;
    }
    let options = web_sys::NotificationOptions::new();
    options.set_body(&note.body);
    options.set_tag(&note.id);
    let _ = web_sys::Notification::new_with_options(&note.title, &options);
}
