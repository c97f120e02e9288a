<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:strip-space elements="*"/>
  <xsl:preserve-space elements="keep"/>
  <xsl:template match="/"><r><xsl:for-each select="//*"><e name="{name()}" children="{count(node())}"/></xsl:for-each><xsl:copy-of select="/"/></r></xsl:template>
</xsl:stylesheet>
