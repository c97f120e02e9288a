<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:import href="base.xsl"/>
  <xsl:variable name="label" select="'main'"/>
  <xsl:template match="customer"><main-customer id="{@id}"/></xsl:template>
</xsl:stylesheet>
