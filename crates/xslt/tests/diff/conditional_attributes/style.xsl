<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r>
      <xsl:for-each select="//item">
        <line>
          <xsl:if test="@qty &gt; 1"><xsl:attribute name="multi">true</xsl:attribute></xsl:if>
          <xsl:attribute name="sku"><xsl:value-of select="@sku"/></xsl:attribute>
          <xsl:attribute name="sku">override-<xsl:value-of select="@sku"/></xsl:attribute>
          <xsl:value-of select="."/>
        </line>
      </xsl:for-each>
    </r>
  </xsl:template>
</xsl:stylesheet>
