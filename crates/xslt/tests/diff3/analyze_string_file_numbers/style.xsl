<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- Marking up file numbers (Aktenzeichen) and dates in running text with xsl:analyze-string. -->
  <xsl:template match="/adressen">
    <text>
      <xsl:analyze-string select="zeile" regex="(Az\.?|AZ)\s+(\d+)-(\d+)/(\d{{4}})|(\d{{2}})\.(\d{{2}})\.(\d{{4}})">
        <xsl:matching-substring>
          <xsl:choose>
            <xsl:when test="regex-group(2)">
              <az nr="{regex-group(2)}" lfd="{xs:integer(regex-group(3))}" jahr="{regex-group(4)}"><xsl:value-of select="."/></az>
            </xsl:when>
            <xsl:otherwise>
              <datum iso="{regex-group(7)}-{regex-group(6)}-{regex-group(5)}"><xsl:value-of select="."/></datum>
            </xsl:otherwise>
          </xsl:choose>
        </xsl:matching-substring>
        <xsl:non-matching-substring><t><xsl:value-of select="."/></t></xsl:non-matching-substring>
      </xsl:analyze-string>
    </text>
  </xsl:template>
</xsl:stylesheet>
