<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- Tunnel parameters carry the customer context down to nested templates. -->
  <xsl:template match="/rechnung">
    <r>
      <xsl:apply-templates select="position">
        <xsl:with-param name="kunde" select="kunde/@id" tunnel="yes"/>
        <xsl:with-param name="waehrung" select="'EUR'" tunnel="yes"/>
      </xsl:apply-templates>
    </r>
  </xsl:template>
  <xsl:template match="position">
    <xsl:param name="waehrung" tunnel="yes"/>
    <p nr="{@nr}" w="{$waehrung}"><xsl:apply-templates select="text"/></p>
  </xsl:template>
  <xsl:template match="text">
    <xsl:param name="kunde" tunnel="yes" as="xs:string" select="'?'"/>
    <xsl:param name="waehrung" select="'nicht getunnelt'"/>
    <t k="{$kunde}" w="{$waehrung}"><xsl:value-of select="."/></t>
  </xsl:template>
</xsl:stylesheet>
