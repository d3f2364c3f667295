//! The client's integration tests: the crashing example runs as a child process,
//! uploads go to a real HTTP server, consent is answered on a pseudo-terminal.

mod consent;
mod crash;
mod hostile;
mod support;
mod upload;
