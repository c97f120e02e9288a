<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r>
      <xsl:apply-templates select="//item">
        <xsl:sort select="@price * @qty" data-type="number" order="descending"/>
        <xsl:with-param name="currency" select="'EUR'"/>
      </xsl:apply-templates>
    </r>
  </xsl:template>
  <xsl:template match="item">
    <xsl:param name="currency"/>
    <line n="{position()}" total="{@price * @qty}" cur="{$currency}"/>
  </xsl:template>
</xsl:stylesheet>
