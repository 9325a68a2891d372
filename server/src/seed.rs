//! `switchboard seed`: fills a database with people, rooms and messages for measuring (search
//! and history at a million messages). Everything goes through the store's own write paths
//! (users, rooms, joins, and messages by group commit in batches), so the event log, room seqs
//! and the search index are what the app itself would have written.
//!
//! Bodies are drawn from a vocabulary with Zipf-like frequencies (the word of rank r comes up
//! about 1/r as often as the commonest), so some words are in most messages and most words in
//! few: a search for "the" and one for a rare word are both realistic. The vocabulary is fixed,
//! so a bench knows which words are common and which are rare ([`word_at`]).

use crate::clock::{new_id, now_ms};
use crate::config::Config;
use crate::store::{self, NewMessage};
use protocol::User;
use std::time::{Duration, Instant};

/// Messages per group commit: large enough that a commit's fixed cost is shared, small enough
/// that one batch's statements stay well under SQLite's bound-variable limit.
const BATCH: usize = 500;
/// Distinct words: enough that the rarest come up a few dozen times in a million messages.
const VOCABULARY: usize = 30_000;
/// The password of every seeded person (for signing in as one to measure).
pub const SEED_PASSWORD: &str = "seed-password";

/// What to make.
#[derive(Debug, Clone, Copy)]
pub struct SeedOptions {
    pub messages: u64,
    pub rooms: u32,
    pub users: u32,
}

/// English words by frequency; the ranks after them are made-up words (see [`word_at`]).
const COMMON: &[&str] = &[
    "the", "to", "and", "a", "i", "you", "it", "of", "is", "that", "in", "we", "for", "this", "on",
    "be", "have", "with", "not", "do", "are", "just", "but", "so", "can", "was", "will", "if",
    "at", "me", "my", "what", "get", "all", "think", "they", "about", "like", "there", "know",
    "one", "out", "up", "good", "no", "yes", "now", "can't", "it's", "don't", "how", "some",
    "time", "when", "see", "go", "would", "people", "from", "an", "or", "by", "new", "more",
    "make", "work", "need", "let", "today", "then", "back", "also", "right", "want", "thanks",
    "here", "meeting", "could", "should", "build", "deploy", "test", "fix", "bug", "release",
    "review", "merge", "branch", "server", "client", "database", "query", "index", "search",
    "message", "room", "tomorrow", "week", "lunch", "coffee", "later", "sure", "ok", "great",
    "nice", "maybe", "still", "looks", "done", "issue", "problem", "idea", "plan",
];

const ONSETS: &[u8] = b"bcdfghjklmnprstvz";
const VOWELS: &[u8] = b"aeiou";

/// The word of rank `r` (0 is the commonest): an English word for the first ranks, then a
/// made-up word of three syllables, distinct for every rank.
pub fn word_at(r: usize) -> String {
    if let Some(w) = COMMON.get(r) {
        return (*w).to_string();
    }
    let syllables = ONSETS.len() * VOWELS.len();
    let space = syllables * syllables * syllables;
    // Scatter neighbouring ranks over the space (7919 is prime, coprime to it).
    let mut n = (r * 7919) % space;
    let mut w = String::with_capacity(6);
    for _ in 0..3 {
        let s = n % syllables;
        n /= syllables;
        w.push(ONSETS[s / VOWELS.len()] as char);
        w.push(VOWELS[s % VOWELS.len()] as char);
    }
    w
}

/// splitmix64: a small, fast, seeded generator (the seed is fixed, so runs are alike).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Zipf's law over `n` ranks (exponent 1), sampled by a binary search of the cumulative sums.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Zipf {
        let mut total = 0.0;
        let cumulative = (1..=n)
            .map(|r| {
                total += 1.0 / r as f64;
                total
            })
            .collect();
        Zipf { cumulative }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.unit() * total;
        self.cumulative.partition_point(|&c| c < x)
    }
}

/// A message body of 3 to 24 words, sometimes a question, sometimes capitalised.
fn body(rng: &mut Rng, words: &Zipf, vocabulary: &[String]) -> String {
    let n = 3 + rng.below(22);
    let mut out = String::with_capacity(n * 6);
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        let w = &vocabulary[words.sample(rng).min(vocabulary.len() - 1)];
        if i == 0 {
            let mut chars = w.chars();
            if let Some(c) = chars.next() {
                out.extend(c.to_uppercase());
                out.push_str(chars.as_str());
            }
        } else {
            out.push_str(w);
        }
    }
    out.push(if rng.below(5) == 0 { '?' } else { '.' });
    out
}

/// Seeds the database of `config` and says what it made on stdout.
pub async fn seed(config: &Config, opts: SeedOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        opts.users >= 1 && opts.rooms >= 1,
        "--users and --rooms must be at least 1"
    );
    let db = store::Db::connect(
        &config.database_url,
        4,
        config.synchronous,
        Duration::from_millis(config.db_lock_timeout_ms.max(1)),
    )
    .await?;
    let store = db.store();
    let started = Instant::now();
    // One hash for everyone: Argon2 per person would take minutes for thousands.
    let hash = tokio::task::spawn_blocking(|| password_auth::generate_hash(SEED_PASSWORD)).await?;
    let now = now_ms();

    let mut users: Vec<User> = Vec::with_capacity(opts.users as usize);
    for i in 0..opts.users {
        let name = format!("seed{i}");
        let user = match store.user_by_name(&name).await? {
            Some(record) => record.user,
            None => store.create_user(&new_id(), &name, &hash, now).await?,
        };
        users.push(user);
    }
    println!("{} people ({:.1?})", users.len(), started.elapsed());

    // Rooms, one in five private; each person is in 3 to 12 rooms, the popular rooms (low
    // numbers) more often: a few big rooms and many small ones.
    let mut rng = Rng(0x5EED);
    let room_pick = Zipf::new(opts.rooms as usize);
    let mut rooms: Vec<(String, Vec<usize>)> = Vec::with_capacity(opts.rooms as usize);
    for i in 0..opts.rooms as usize {
        let creator = i % users.len();
        let (room, _) = store
            .create_room(
                &new_id(),
                &users[creator],
                &format!("seed-room-{i}"),
                i % 5 == 4,
                now,
            )
            .await?;
        rooms.push((room.id.to_string(), vec![creator]));
    }
    let mut joins = 0;
    for (u, user) in users.iter().enumerate() {
        let k = 3 + rng.below(10);
        for _ in 0..k {
            let r = room_pick.sample(&mut rng).min(rooms.len() - 1);
            if rooms[r].1.contains(&u) {
                continue;
            }
            store.join(&rooms[r].0, user, now).await?;
            rooms[r].1.push(u);
            joins += 1;
        }
    }
    println!(
        "{} rooms, {joins} joins ({:.1?})",
        rooms.len(),
        started.elapsed()
    );

    // Messages: a room by popularity, an author among its members, a body of Zipf words. Times
    // run up to now, a few seconds apart.
    let vocabulary: Vec<String> = (0..VOCABULARY).map(word_at).collect();
    let words = Zipf::new(VOCABULARY);
    let step_ms = 3_000;
    let first_ms = now - opts.messages as i64 * step_ms;
    let mut written = 0u64;
    let mut last_report = Instant::now();
    while written < opts.messages {
        let n = BATCH.min((opts.messages - written) as usize);
        let batch: Vec<NewMessage> = (0..n)
            .map(|i| {
                let r = room_pick.sample(&mut rng).min(rooms.len() - 1);
                let members = &rooms[r].1;
                let author = users[members[rng.below(members.len())]].clone();
                NewMessage {
                    id: new_id().into(),
                    room_id: rooms[r].0.clone().into(),
                    author,
                    body: body(&mut rng, &words, &vocabulary),
                    client_id: new_id(),
                    now: first_ms + (written + i as u64) as i64 * step_ms,
                    notify: Vec::new(),
                    reply_to: None,
                    attachments: Vec::new(),
                }
            })
            .collect();
        for outcome in store.send_messages(&batch).await? {
            outcome?;
        }
        written += n as u64;
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            let rate = written as f64 / started.elapsed().as_secs_f64();
            println!("{written} messages ({rate:.0}/s)");
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{written} messages in {secs:.1} s ({:.0}/s). Sign in as seed0 .. seed{} with password {SEED_PASSWORD:?}.",
        written as f64 / secs,
        users.len() - 1
    );
    println!(
        "Words: common {:?} (rank 1), middling {:?} (rank 1000), rare {:?} (rank 20000); prefix {:?}",
        word_at(0),
        word_at(1000),
        word_at(20_000),
        format!("{}*", &word_at(5000)[..3])
    );
    // Fresh statistics for the planner, as autovacuum would gather them later.
    let t = Instant::now();
    store.analyze().await?;
    println!("statistics gathered ({:.1?})", t.elapsed());
    db.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_distinct_and_zipf_favours_low_ranks() {
        let words: std::collections::HashSet<String> = (0..VOCABULARY).map(word_at).collect();
        assert_eq!(words.len(), VOCABULARY);
        let z = Zipf::new(1000);
        let mut rng = Rng(1);
        let draws: Vec<usize> = (0..10_000).map(|_| z.sample(&mut rng)).collect();
        let first = draws.iter().filter(|&&r| r == 0).count();
        let tenth = draws.iter().filter(|&&r| r == 9).count();
        assert!(first > 5 * tenth, "{first} vs {tenth}");
        assert!(draws.iter().all(|&r| r < 1000));
    }
}
