//! Hub operations used by the REST API beyond messaging: servers, participants, agents.

use crate::Hub;

impl Hub {}
