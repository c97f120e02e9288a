<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- Flat headings to nested sections (two levels of group-starting-with). -->
  <xsl:template match="/body">
    <satzung>
      <xsl:for-each-group select="*" group-starting-with="h1">
        <teil titel="{current-group()[self::h1]}" nr="{position()}">
          <xsl:for-each-group select="current-group() except ." group-starting-with="h2">
            <xsl:choose>
              <xsl:when test="self::h2">
                <paragraph titel="{.}">
                  <xsl:copy-of select="current-group() except ."/>
                </paragraph>
              </xsl:when>
              <xsl:otherwise>
                <vorspann><xsl:copy-of select="current-group()"/></vorspann>
              </xsl:otherwise>
            </xsl:choose>
          </xsl:for-each-group>
        </teil>
      </xsl:for-each-group>
    </satzung>
  </xsl:template>
</xsl:stylesheet>
