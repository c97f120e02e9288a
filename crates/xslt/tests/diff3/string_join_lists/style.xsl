<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <xsl:output method="text"/>
  <!-- Joined lists for mail texts and log lines. -->
  <xsl:template match="/antraege">
    <xsl:value-of select="string-join(antrag/@id, ', ')"/>
    <xsl:text>&#10;</xsl:text>
    <xsl:value-of select="string-join(for $a in antrag[@status = 'offen'] return $a/vorname || ' ' || $a/name, '; ')"/>
    <xsl:text>&#10;</xsl:text>
    <xsl:value-of select="string-join((1 to 5) ! string(. * .), '+')"/>
    <xsl:text>&#10;[</xsl:text>
    <xsl:value-of select="string-join(())"/>
    <xsl:text>]&#10;</xsl:text>
    <xsl:value-of select="string-join(antrag/@plz)"/>
    <xsl:text>&#10;</xsl:text>
    <xsl:value-of select="count(antrag), sum(antrag/@betrag), avg(antrag/@betrag), max(antrag/xs:date(@eingang)), min(antrag/name ! string(.))" separator=" | "/>
    <xsl:text>&#10;</xsl:text>
  </xsl:template>
</xsl:stylesheet>
