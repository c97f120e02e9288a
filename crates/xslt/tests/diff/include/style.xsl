<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:include href="inc/common.xsl"/>
  <xsl:template match="/"><r><xsl:apply-templates select="//customer"/><xsl:call-template name="footer"/><v><xsl:value-of select="$shared"/></v></r></xsl:template>
</xsl:stylesheet>
