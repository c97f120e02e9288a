<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all" expand-text="yes">
  <!-- Text value templates (expand-text) in a notice letter. -->
  <xsl:output method="text"/>
  <xsl:template match="/antraege">
    <xsl:apply-templates select="antrag[@status != 'abgelehnt']"/>
  </xsl:template>
  <xsl:template match="antrag">Sehr geehrte(r) {vorname} {name},
Ihr Antrag {@id} auf {@art} vom {format-date(xs:date(@eingang), '[D01].[M01].[Y0001]')} ist {if (@status = 'offen') then 'in Bearbeitung' else 'bewilligt'}.
Betrag: {format-number(@betrag, '0.00')} EUR; {{geschweifte Klammern}} bleiben.
<xsl:text expand-text="no">{nicht expandiert}&#10;</xsl:text>
</xsl:template>
</xsl:stylesheet>
