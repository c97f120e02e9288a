<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:variable name="shared" select="'from include'"/>
  <xsl:template match="customer"><c id="{@id}"><xsl:value-of select="."/></c></xsl:template>
  <xsl:template name="footer"><footer/></xsl:template>
</xsl:stylesheet>
