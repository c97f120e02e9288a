<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- String functions on German text: case mapping (ß), normalization forms, codepoints, substring on non-BMP text. -->
  <xsl:template match="/antraege">
    <s>
      <a><xsl:value-of select="upper-case('Straße'), lower-case('ÄRGER'), upper-case('ÿ')"/></a>
      <b><xsl:value-of select="string-length('Müller'), string-length(normalize-unicode('Mu&#x308;ller')), string-length('Mu&#x308;ller')"/></b>
      <c><xsl:value-of select="normalize-unicode('Mu&#x308;ller') = 'Müller', normalize-unicode('Müller', 'NFD') = 'Mu&#x308;ller'"/></c>
      <d><xsl:value-of select="string-to-codepoints('Aß€'), codepoints-to-string((87, 246, 108, 102))"/></d>
      <e><xsl:value-of select="substring('a&#x1F600;bc', 2, 2), string-length('a&#x1F600;bc')"/></e>
      <f><xsl:value-of select="translate('Öffnungszeiten', 'ÄÖÜäöü', 'AOUaou'), contains('Weißwurst', 'ßw'), starts-with('Zoë', 'Zo'), ends-with('Ärger', 'ger')"/></f>
      <g><xsl:value-of select="substring-before('09162000', '2'), substring-after('K-100', '-'), compare('a', 'b'), compare('b', 'a'), compare('ä', 'ä')"/></g>
      <h><xsl:value-of select="concat('a', 1, true(), ()), normalize-space('  viele   Leer  zeichen ')"/></h>
      <i><xsl:value-of select="encode-for-uri('Müller &amp; Söhne/GmbH'), escape-html-uri('http://x.de/ä b'), iri-to-uri('http://x.de/ä b')"/></i>
      <j><xsl:value-of select="antrag/name ! upper-case(.)" separator="|"/></j>
      <k><xsl:value-of select="contains-token('offen bewilligt', 'offen'), string(xs:untypedAtomic(' x '))"/></k>
    </s>
  </xsl:template>
</xsl:stylesheet>
