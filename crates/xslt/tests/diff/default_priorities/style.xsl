<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:n="urn:n">
  <xsl:template match="/"><r><xsl:apply-templates select="//*"/></r></xsl:template>
  <xsl:template match="*"><any name="{name()}"/></xsl:template>
  <xsl:template match="n:*"><ns-any name="{local-name()}"/></xsl:template>
  <xsl:template match="b"><b-name/></xsl:template>
  <xsl:template match="n:c"><nc/></xsl:template>
  <xsl:template match="a/b"><a-b/></xsl:template>
  <xsl:template match="b[@k]"><b-pred/></xsl:template>
  <xsl:template match="node()"><node/></xsl:template>
</xsl:stylesheet>
