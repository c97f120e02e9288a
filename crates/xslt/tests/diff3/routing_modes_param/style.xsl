<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- Routing by a parameter that selects the output profile; templates per profile in modes, with next-match. -->
  <xsl:param name="profil" select="'xta'"/>
  <xsl:template match="/antraege">
    <xsl:choose>
      <xsl:when test="$profil = 'xta'"><xta><xsl:apply-templates select="antrag" mode="xta"/></xta></xsl:when>
      <xsl:otherwise><mail><xsl:apply-templates select="antrag" mode="mail"/></mail></xsl:otherwise>
    </xsl:choose>
  </xsl:template>
  <xsl:template match="antrag" mode="xta">
    <nachricht id="{@id}"><xsl:apply-templates select="@*" mode="#current"/></nachricht>
  </xsl:template>
  <xsl:template match="antrag[@status = 'offen']" mode="xta" priority="2">
    <dringend id="{@id}"><xsl:apply-templates select="@betrag" mode="#current"/></dringend>
  </xsl:template>
  <xsl:template match="@*" mode="xta"/>
  <xsl:template match="@betrag" mode="xta"><betrag><xsl:value-of select="."/></betrag></xsl:template>
  <xsl:template match="antrag" mode="mail"><an><xsl:value-of select="vorname, name"/></an></xsl:template>
</xsl:stylesheet>
