//! JSON ↔ the XPath 3.1 `fn:json-to-xml` XML representation (OWNER: tree helper).
