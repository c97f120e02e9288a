//! XML encryption (xmlenc 1.1) of OSCI messages: the transport layer and
//! end-to-end content encryption. (Being written, issue 14.)
