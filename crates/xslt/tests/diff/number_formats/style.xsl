<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r>
      <xsl:for-each select="//n">
        <f><xsl:number value="." format="1"/>,<xsl:number value="." format="001"/>,<xsl:number value="." format="a"/>,<xsl:number value="." format="A"/>,<xsl:number value="." format="i"/>,<xsl:number value="." format="I"/>,<xsl:number value="." format="(1)"/></f>
      </xsl:for-each>
      <g><xsl:number value="1234567" grouping-separator="." grouping-size="3"/></g>
    </r>
  </xsl:template>
</xsl:stylesheet>
