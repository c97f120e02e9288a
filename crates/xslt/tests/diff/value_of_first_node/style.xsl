<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r><first><xsl:value-of select="//item"/></first><attr><xsl:value-of select="//item/@sku"/></attr><avt x="{//customer}"/></r>
  </xsl:template>
</xsl:stylesheet>
