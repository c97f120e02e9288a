<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:v="urn:vendor" xmlns:o="urn:other" exclude-result-prefixes="v o">
  <xsl:template match="/"><r><xsl:apply-templates select="//*"/></r></xsl:template>
  <xsl:template match="v:order"><order id="{@v:id}"/></xsl:template>
  <xsl:template match="v:*" priority="-0.1"><vendor name="{local-name()}"/></xsl:template>
  <xsl:template match="o:line[@o:n='2']"><second/></xsl:template>
  <xsl:template match="*"><other name="{name()}" ns="{namespace-uri()}"/></xsl:template>
</xsl:stylesheet>
