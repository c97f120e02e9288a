<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- Timestamps in messages: time zones, adjustment to UTC, 12/24 hour clocks. -->
  <xsl:template match="/">
    <xsl:variable name="t" select="xs:dateTime('2024-03-31T01:30:05.25+01:00')"/>
    <zeit>
      <a><xsl:value-of select="format-dateTime($t, '[Y0001]-[M01]-[D01] [H01]:[m01]:[s01]')"/></a>
      <b><xsl:value-of select="format-dateTime($t, '[D01].[M01].[Y] [H]:[m01] Uhr')"/></b>
      <c><xsl:value-of select="format-dateTime($t + xs:dayTimeDuration('PT12H'), '[h]:[m01]'), format-dateTime($t, '[h]:[m01]')"/></c>
      <d><xsl:value-of select="format-dateTime($t, '[H01]:[m01] [Z]')"/></d>
      <e><xsl:value-of select="format-dateTime($t, '[H01]:[m01]:[s01].[f001]')"/></e>
      <f><xsl:value-of select="adjust-dateTime-to-timezone($t, xs:dayTimeDuration('PT0H'))"/></f>
      <g><xsl:value-of select="adjust-dateTime-to-timezone($t, xs:dayTimeDuration('PT2H'))"/></g>
      <h><xsl:value-of select="format-time(xs:time('23:59:00'), '[H01]:[m01]')"/></h>
      <i><xsl:value-of select="format-dateTime($t, '[Y0001][M01][D01]T[H01][m01][s01][Z0000]')"/></i>
      <j><xsl:value-of select="xs:dateTime('2024-12-31T23:00:00Z') - xs:dateTime('2024-01-01T00:00:00+01:00')"/></j>
    </zeit>
  </xsl:template>
</xsl:stylesheet>
