//! The XPath 3.1 lexer (OWNER: parser helper).
