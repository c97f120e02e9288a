<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- CSV lines in an element: tokenize by line and by separator, quotes handled by regex. -->
  <xsl:template match="/adressen">
    <kunden>
      <xsl:for-each select="tokenize(csv, '\r?\n')">
        <xsl:variable name="felder" select="tokenize(replace(., '&quot;([^&quot;;]*);([^&quot;]*)&quot;', '&quot;$1§$2&quot;'), ';') ! translate(., '§', ';')"/>
        <kunde n="{position()}" felder="{count($felder)}">
          <xsl:for-each select="$felder">
            <f><xsl:value-of select="replace(., '^&quot;(.*)&quot;$', '$1')"/></f>
          </xsl:for-each>
        </kunde>
      </xsl:for-each>
      <w><xsl:value-of select="tokenize('  a  b c ')" separator="|"/></w>
      <w><xsl:value-of select="count(tokenize('a,,b,', ','))"/></w>
      <w><xsl:value-of select="tokenize('1 ; 2;3 ;4', '\s*;\s*')" separator="|"/></w>
    </kunden>
  </xsl:template>
</xsl:stylesheet>
