<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><start><xsl:apply-templates/></start></xsl:template>
  <xsl:template match="/*"><top name="{name()}"><xsl:apply-templates select="*"/></top></xsl:template>
  <xsl:template match="*"><el name="{name()}"/></xsl:template>
</xsl:stylesheet>
