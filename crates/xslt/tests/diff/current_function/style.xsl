<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r>
      <xsl:for-each select="//order">
        <o id="{@id}" name="{//customer[@id = current()/@customer]}" same="{count(//order[@customer = current()/@customer])}"/>
      </xsl:for-each>
    </r>
  </xsl:template>
</xsl:stylesheet>
