<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- format-integer and xsl:number in 2.0+ form: zero padding, grouping, letters, roman, ordinals in English (number words are implementation-defined and left out). -->
  <xsl:template match="/antraege">
    <n>
      <a><xsl:value-of select="format-integer(7, '000'), format-integer(1234567, '#,##0'), format-integer(-42, '0000')"/></a>
      <b><xsl:value-of select="format-integer(28, 'a'), format-integer(28, 'A'), format-integer(2024, 'I'), format-integer(14, 'i')"/></b>
      <c><xsl:value-of select="format-integer(1, '1;o', 'en'), format-integer(2, '1;o', 'en'), format-integer(3, '1;o', 'en'), format-integer(11, '1;o', 'en'), format-integer(22, '1;o', 'en')"/></c>
      <d><xsl:value-of select="format-integer(1234, '0'), format-integer(-5, '1'), format-integer(0, '00')"/></d>
      <e><xsl:value-of select="format-integer(12345, '#,##0'), format-integer(5, '#0')"/></e>
      <xsl:for-each select="antrag">
        <xsl:sort select="@eingang"/>
        <lfd nr="{position()}"><xsl:number value="position()" format="001"/>/<xsl:number value="position()" format="a"/>/<xsl:number value="count(preceding-sibling::antrag) + 1" format="I"/></lfd>
      </xsl:for-each>
    </n>
  </xsl:template>
</xsl:stylesheet>
