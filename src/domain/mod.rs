//! Domain values, each parsed and validated at the edge: channel names,
//! message ids, messages and users.

mod channel_name;
mod message;
mod message_id;
mod user;

pub use channel_name::{ChannelName, ChannelNameError};
pub use message::{Envelope, EnvelopeError, MessageDraft, Source, text_frame};
pub use message_id::{MessageId, MessageIdError};
pub use user::User;
