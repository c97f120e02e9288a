<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r><xsl:for-each select="//customer | //order/@id | //order[1]"><n><xsl:value-of select="name()"/>:<xsl:value-of select="normalize-space(.)"/></n></xsl:for-each></r>
  </xsl:template>
</xsl:stylesheet>
