<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r>
      <a>
        <xsl:value-of select="'x'"/>
        <xsl:text> </xsl:text>
        <xsl:value-of select="'y'"/>
      </a>
      <b>  literal  <xsl:value-of select="1"/></b>
    </r>
  </xsl:template>
</xsl:stylesheet>
