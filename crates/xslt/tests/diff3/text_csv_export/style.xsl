<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- CSV export (semicolon, German decimal comma, quoting per RFC 4180) as text output. -->
  <xsl:output method="text" encoding="UTF-8"/>
  <xsl:param name="trenner" select="';'"/>
  <xsl:function name="f:feld" as="xs:string">
    <xsl:param name="v" as="xs:string"/>
    <xsl:sequence select="if (matches($v, '[;&quot;\n]') or $v != normalize-space($v)) then '&quot;' || replace($v, '&quot;', '&quot;&quot;') || '&quot;' else $v"/>
  </xsl:function>
  <xsl:template match="/antraege">
    <xsl:value-of select="'id', 'name', 'eingang', 'betrag', 'vermerk'" separator="{$trenner}"/>
    <xsl:text>&#10;</xsl:text>
    <xsl:for-each select="antrag">
      <xsl:value-of select="f:feld(@id), f:feld(name || ', ' || vorname), format-date(xs:date(@eingang), '[D01].[M01].[Y0001]'), translate(format-number(xs:decimal(@betrag), '0.00'), '.', ','), f:feld(if (@status = 'abgelehnt') then 'Status &quot;abgelehnt&quot;; siehe Akte' else if (@status = 'offen') then ' offen ' else '')" separator="{$trenner}"/>
      <xsl:text>&#10;</xsl:text>
    </xsl:for-each>
    <xsl:value-of select="'Summe', '', '', translate(format-number(sum(antrag/@betrag), '0.00'), '.', ','), ''" separator="{$trenner}"/>
    <xsl:text>&#10;</xsl:text>
  </xsl:template>
</xsl:stylesheet>
