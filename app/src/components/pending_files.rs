//! Files on their way into a message: what the composer holds between picking (the paperclip,
//! a drop on the room, a paste) and sending. Each file is uploaded at once, with a progress bar
//! and Cancel; a finished one waits for the message (and survives a reload, as the draft does);
//! a refused one says why in the server's words (the size limit, the daily allowance).

use crate::components::message::human_size;
use crate::state::chat::Chat;
use crate::upload::{self, Finished, Sending};
use crate::{outbox, testid};
use leptos::prelude::*;
use protocol::Upload;
use send_wrapper::SendWrapper;
use std::collections::HashMap;

/// Where one file is.
#[derive(Debug, Clone, PartialEq)]
pub enum FileState {
    /// Going up: the fraction sent.
    Sending(f64),
    Stored(Upload),
    Refused(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PendingFile {
    pub key: u64,
    pub name: String,
    pub size: i64,
    pub state: FileState,
}

/// Files dropped on a room's page, for its composer to take (a drop lands on the page, the
/// composer is one part of it).
#[derive(Clone, Copy)]
pub struct DroppedFiles(pub RwSignal<Vec<SendWrapper<web_sys::File>>>);

/// The files of a `FileList` (an input's, a drop's, a paste's).
pub fn files_of(list: Option<web_sys::FileList>) -> Vec<web_sys::File> {
    list.map(|l| (0..l.length()).filter_map(|i| l.get(i)).collect())
        .unwrap_or_default()
}

/// The composer's files: the list, the uploads under way, and what the composer asks of them.
#[derive(Clone, Copy)]
pub struct PendingFiles {
    pub list: RwSignal<Vec<PendingFile>>,
    sending: StoredValue<HashMap<u64, Sending>>,
    next: StoredValue<u64>,
    /// Where finished files are kept over a reload: (user id, room id); None in a thread.
    keep: StoredValue<Option<(String, String)>>,
}

impl PendingFiles {
    /// An empty list; [`PendingFiles::restore`] brings back what was kept (browser only).
    pub fn new(keep: Option<(String, String)>) -> Self {
        PendingFiles {
            list: RwSignal::new(Vec::new()),
            sending: StoredValue::new(HashMap::new()),
            next: StoredValue::new(0),
            keep: StoredValue::new(keep),
        }
    }

    /// The finished files kept over a reload come back (called from an effect: the server has
    /// no storage, and the first render must match its page).
    pub fn restore(self) {
        let Some((user, room)) = self.keep.get_value() else {
            return;
        };
        let kept = outbox::draft_files(&user, &room);
        if kept.is_empty() {
            return;
        }
        self.list.update(|l| {
            for u in kept {
                let key = self.next.get_value();
                self.next.set_value(key + 1);
                l.push(PendingFile {
                    key,
                    name: u.name.clone(),
                    size: u.size,
                    state: FileState::Stored(u),
                });
            }
        });
    }

    fn save(self) {
        if let Some((user, room)) = self.keep.try_get_value().flatten() {
            outbox::set_draft_files(&user, &room, &self.stored());
        }
    }

    fn set_state(self, key: u64, state: FileState) {
        let _ = self.list.try_update(|l| {
            if let Some(f) = l.iter_mut().find(|f| f.key == key) {
                f.state = state;
            }
        });
    }

    /// Starts uploading `files` (at most [`protocol::MAX_ATTACHMENTS`] in the composer at once).
    pub fn add(self, files: Vec<web_sys::File>, chat: Chat) {
        for file in files {
            if self.list.with_untracked(Vec::len) >= protocol::MAX_ATTACHMENTS {
                chat.notify(format!(
                    "A message carries at most {} files.",
                    protocol::MAX_ATTACHMENTS
                ));
                return;
            }
            let key = self.next.get_value();
            self.next.set_value(key + 1);
            self.list.update(|l| {
                l.push(PendingFile {
                    key,
                    name: file.name(),
                    size: file.size() as i64,
                    state: FileState::Sending(0.0),
                })
            });
            let progress = move |p: f64| {
                let _ = self.list.try_update(|l| {
                    if let Some(f) = l.iter_mut().find(|f| f.key == key) {
                        if matches!(f.state, FileState::Sending(_)) {
                            f.state = FileState::Sending(p);
                        }
                    }
                });
            };
            let done = move |end: Finished| {
                let _ = self.sending.try_update_value(|s| s.remove(&key));
                match end {
                    Finished::Stored(u) => {
                        self.set_state(key, FileState::Stored(u));
                        self.save();
                    }
                    Finished::Failed(e) => self.set_state(key, FileState::Refused(e.message)),
                    Finished::Cancelled => {
                        let _ = self.list.try_update(|l| l.retain(|f| f.key != key));
                    }
                }
            };
            match upload::start(&file, progress, done) {
                Ok(s) => self.sending.update_value(|m| {
                    m.insert(key, s);
                }),
                Err(e) => self.set_state(key, FileState::Refused(e.message)),
            }
        }
    }

    /// Cancels an upload under way, or takes a file out of the message.
    pub fn remove(self, key: u64) {
        if let Some(s) = self.sending.with_value(|m| m.get(&key).cloned()) {
            s.cancel();
        } else {
            self.list.update(|l| l.retain(|f| f.key != key));
            self.save();
        }
    }

    /// Cancels every upload under way (the composer is going away).
    pub fn cancel_all(self) {
        if let Some(all) = self
            .sending
            .try_with_value(|m| m.values().cloned().collect::<Vec<_>>())
        {
            for s in all {
                s.cancel();
            }
        }
    }

    pub fn uploading(self) -> bool {
        self.list
            .with_untracked(|l| l.iter().any(|f| matches!(f.state, FileState::Sending(_))))
    }

    /// The files ready to go with the message, in the order they were added.
    pub fn stored(self) -> Vec<Upload> {
        self.list
            .try_with_untracked(|l| {
                l.iter()
                    .filter_map(|f| match &f.state {
                        FileState::Stored(u) => Some(u.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The message took the files: the composer starts empty.
    pub fn clear(self) {
        self.list.set(Vec::new());
        self.save();
    }
}

/// The files above the composer's text: name, size, a progress bar while sending, the reason
/// when refused, and a button that cancels or removes each.
#[component]
pub fn PendingFileList(files: PendingFiles) -> impl IntoView {
    view! {
        <Show when=move || !files.list.with(Vec::is_empty)>
            <ul class="pending-files" aria-label="Files to send">
                <For each=move || files.list.get() key=|f| f.key let:f>
                    {
                        let key = f.key;
                        let name = f.name.clone();
                        let state = move || {
                            files.list.with(|l| l.iter().find(|x| x.key == key).map(|x| x.state.clone()))
                        };
                        let sending = move || matches!(state(), Some(FileState::Sending(_)));
                        let progress_label = format!("Uploading {name}");
                        let (cancel_words, remove_words) = (format!("Cancel the upload of {name}"), format!("Remove {name}"));
                        view! {
                            <li class="pending-file" class:refused=move || matches!(state(), Some(FileState::Refused(_)))
                                data-testid=testid::PENDING_FILE>
                                <span class="name" title=name.clone()>{name.clone()}</span>
                                <span class="size">{human_size(f.size)}</span>
                                <Show when=sending>
                                    <progress max="1" aria-label=progress_label.clone()
                                        prop:value=move || match state() { Some(FileState::Sending(p)) => p, _ => 1.0 }
                                        data-testid=testid::PENDING_PROGRESS></progress>
                                </Show>
                                {move || match state() {
                                    Some(FileState::Stored(_)) => Some(view! { <span class="ready">"ready"</span> }.into_any()),
                                    Some(FileState::Refused(why)) => Some(view! {
                                        <span class="field-error" role="alert" data-testid=testid::PENDING_ERROR>{why}</span>
                                    }.into_any()),
                                    _ => None,
                                }}
                                <button type="button" class="link"
                                    aria-label=move || if sending() { cancel_words.clone() } else { remove_words.clone() }
                                    on:click=move |_| files.remove(key) data-testid=testid::PENDING_CANCEL>
                                    {move || if sending() { "Cancel" } else { "Remove" }}
                                </button>
                            </li>
                        }
                    }
                </For>
            </ul>
        </Show>
    }
}
