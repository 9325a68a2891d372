//! Integration tests: the real server on an ephemeral port, a temporary SQLite file, real HTTP
//! and WebSocket clients. One test binary, so the server links once.

mod common;

mod auth;
mod authz;
mod bad_input;
mod cluster;
mod fuzz;
mod hardening;
mod headers;
mod jobs;
mod limits;
mod live_ws;
mod messages;
mod messages_life;
mod metrics;
mod notifications;
mod origin;
mod pages;
mod people;
mod presence;
mod quotas;
mod restart;
mod rooms;
mod search;
mod sessions;
mod storage;
mod transports;
mod uploads;
mod ws_echo;
