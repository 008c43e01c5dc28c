//! What the client shows, as pure models: window layout and present options (`layout`), colour
//! maths (`color`), the state screen (`screen`), the overlay's text (`overlay`), the kiosk's
//! screens (`kiosk`) and the latency lab's plot (`plot`).

pub mod color;
pub mod kiosk;
pub mod layout;
pub mod overlay;
pub mod plot;
pub mod screen;
