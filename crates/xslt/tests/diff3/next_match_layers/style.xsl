<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:array="http://www.w3.org/2005/xpath-functions/array" exclude-result-prefixes="#all">
  <!-- Layered rules: a specific rule adds a wrapper and delegates with xsl:next-match (XSLT 2.0). -->
  <xsl:template match="/antraege"><r><xsl:apply-templates select="antrag"/></r></xsl:template>
  <xsl:template match="antrag"><a id="{@id}"><xsl:value-of select="name"/></a></xsl:template>
  <xsl:template match="antrag[@status = 'offen']" priority="1">
    <offen><xsl:next-match/></offen>
  </xsl:template>
  <xsl:template match="antrag[xs:decimal(@betrag) gt 1000]" priority="2">
    <gross><xsl:next-match/></gross>
  </xsl:template>
</xsl:stylesheet>
