<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r>
      <xsl:for-each select="//item">
        <xsl:sort select="."/>
        <xsl:sort select="@qty" data-type="number" order="descending"/>
        <i name="{.}" qty="{@qty}"/>
      </xsl:for-each>
    </r>
  </xsl:template>
</xsl:stylesheet>
