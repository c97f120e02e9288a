<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:param name="tenant" select="'none'"/>
  <xsl:param name="limit" select="2"/>
  <xsl:param name="unset">fallback</xsl:param>
  <xsl:variable name="greeting" select="concat('Hello ', $tenant)"/>
  <xsl:template match="/">
    <r tenant="{$tenant}" unset="{$unset}">
      <g><xsl:value-of select="$greeting"/></g>
      <xsl:for-each select="//item[position() &lt;= $limit]"><i><xsl:value-of select="@sku"/></i></xsl:for-each>
      <big><xsl:value-of select="count(//item[@qty &gt; $limit])"/></big>
    </r>
  </xsl:template>
</xsl:stylesheet>
