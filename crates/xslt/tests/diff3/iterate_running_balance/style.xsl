<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- xsl:iterate: running totals and an early exit with xsl:break when a limit is reached. -->
  <xsl:param name="limit" as="xs:decimal" select="1500"/>
  <xsl:template match="/rechnung">
    <konto>
      <xsl:iterate select="position">
        <xsl:param name="saldo" as="xs:decimal" select="0"/>
        <xsl:on-completion><ende saldo="{$saldo}"/></xsl:on-completion>
        <xsl:variable name="neu" select="$saldo + xs:decimal(menge) * xs:decimal(einzelpreis)"/>
        <xsl:choose>
          <xsl:when test="$neu gt $limit">
            <xsl:break><abbruch bei="{@nr}" saldo="{$saldo}"/></xsl:break>
          </xsl:when>
          <xsl:otherwise>
            <buchung nr="{@nr}" saldo="{$neu}"/>
            <xsl:next-iteration><xsl:with-param name="saldo" select="$neu"/></xsl:next-iteration>
          </xsl:otherwise>
        </xsl:choose>
      </xsl:iterate>
    </konto>
  </xsl:template>
</xsl:stylesheet>
