<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="item"><i><xsl:apply-templates/></i></xsl:template>
  <xsl:template match="@*"><attr/></xsl:template>
</xsl:stylesheet>
