//! `format-number()` pictures (XSLT 1.0 / XPath 3.1 rules) and decimal
//! formats; `format-integer()` and the `xsl:number` format tokens.
//! OWNER: datetime helper.
